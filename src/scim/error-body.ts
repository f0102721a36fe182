/** The SCIM wire format's media type and error body, shared by SCIM responses and the HTTP error middleware. */
export const scimErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";
/** RFC 7644 §8.1: SCIM responses are application/scim+json. */
export const scimContentType = "application/scim+json; charset=utf-8";

/** RFC 7644 §3.12 Error body; "status" is a string there. */
export function scimErrorBody(status: number, detail: string, scimType?: string): Record<string, unknown> {
  return { schemas: [scimErrorSchema], status: String(status), ...(scimType ? { scimType } : {}), detail };
}
