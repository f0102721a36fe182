// Minimal types for the part of newman's programmatic API the conformance tests use (newman ships none).
declare module "newman" {
  interface NewmanRunOptions {
    collection: string | object;
    envVar?: { key: string; value: string }[];
    folder?: string | string[];
    reporters?: string | string[];
    timeoutRequest?: number;
  }
  interface NewmanFailure {
    error: { name?: string; message: string; test?: string };
    at: string;
    source?: { name: string };
    parent?: { name: string };
  }
  interface NewmanRunSummary {
    run: {
      failures: NewmanFailure[];
      stats: { requests: { total: number; failed: number }; assertions: { total: number; failed: number } };
    };
  }
  const newman: {
    run(options: NewmanRunOptions, callback: (err: Error | null, summary: NewmanRunSummary) => void): unknown;
  };
  export = newman;
}
