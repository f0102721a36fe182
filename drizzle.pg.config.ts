import { defineConfig } from "drizzle-kit";

// PostgreSQL migrations are generated from db/schema.pg.ts; never edit the generated files by hand.
export default defineConfig({
  dialect: "postgresql",
  schema: "./db/schema.pg.ts",
  out: "./db/pg",
});
