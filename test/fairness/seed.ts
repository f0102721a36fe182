import type Database from "better-sqlite3";

/** Many users at once, straight into the tables the SCIM layer writes (the HTTP path would take minutes). */
export function seedUsers(sqlite: Database.Database, directoryId: string, count: number, prefix = "seed"): string[] {
  const insertUser = sqlite.prepare(
    "INSERT INTO users (id, directory_id, user_name, user_name_lower, external_id, display_name, active, resource, version, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, 1, ?, ?)",
  );
  const insertEmail = sqlite.prepare(
    "INSERT INTO user_emails (user_id, directory_id, position, value_lower, type, \"primary\") VALUES (?, ?, 0, ?, 'work', 1)",
  );
  const now = Date.now();
  const ids: string[] = [];
  sqlite.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = `${prefix}-${directoryId}-${i}`;
      const userName = `${prefix}${i}@fair.example`;
      const resource = {
        userName,
        externalId: `ext-${i}`,
        displayName: `User ${i}`,
        title: `Title ${i % 50}`,
        active: true,
        emails: [{ value: userName, type: "work", primary: true }],
      };
      insertUser.run(
        id,
        directoryId,
        userName,
        userName,
        `ext-${i}`,
        `User ${i}`,
        JSON.stringify(resource),
        now + i,
        now + i,
      );
      insertEmail.run(id, directoryId, userName);
      ids.push(id);
    }
    sqlite.prepare("UPDATE directories SET user_count = user_count + ? WHERE id = ?").run(count, directoryId);
  })();
  return ids;
}
