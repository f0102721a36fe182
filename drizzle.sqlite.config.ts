import { defineConfig } from "drizzle-kit";

// Migrations are generated from db/schema.ts; never edit the generated files by hand.
export default defineConfig({
  dialect: "sqlite",
  schema: "./db/schema.ts",
  out: "./db/sqlite",
});
