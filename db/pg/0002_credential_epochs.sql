-- Custom migration (drizzle-kit generate --custom): what db/sqlite gets from src/directory/database.ts
-- and src/directory/fold.ts at run time, written once here for PostgreSQL.

-- credential_epochs: token caches compare this counter on every request and drop their entries when
-- it moved, so every change that can end a SCIM token's validity must move it: revocation, expiry,
-- a new hash or directory, deletion, and deletions cascaded from a directory or organization (the
-- foreign keys' ON DELETE CASCADE fires row triggers on scim_tokens). Row-level, as SQLite's
-- triggers are, so an UPDATE or DELETE that touches no row moves nothing. TRUNCATE fires no row
-- triggers, so it has a statement trigger of its own. PostgreSQL refuses to change the type of a
-- column a trigger names: a later migration that alters token_hash, directory_id, expires_at or
-- revoked_at drops scim_tokens_epoch_on_update first and creates it again after.
INSERT INTO credential_epochs (name, epoch) VALUES ('scim_tokens', 0) ON CONFLICT (name) DO NOTHING;
--> statement-breakpoint
CREATE FUNCTION scim_tokens_bump_epoch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE credential_epochs SET epoch = epoch + 1 WHERE name = 'scim_tokens';
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER scim_tokens_epoch_on_update AFTER UPDATE OF token_hash, directory_id, expires_at, revoked_at ON scim_tokens
  FOR EACH ROW EXECUTE FUNCTION scim_tokens_bump_epoch();
--> statement-breakpoint
CREATE TRIGGER scim_tokens_epoch_on_delete AFTER DELETE ON scim_tokens
  FOR EACH ROW EXECUTE FUNCTION scim_tokens_bump_epoch();
--> statement-breakpoint
CREATE TRIGGER scim_tokens_epoch_on_truncate AFTER TRUNCATE ON scim_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION scim_tokens_bump_epoch();
--> statement-breakpoint

-- scim_fold(text): foldCase of src/directory/fold.ts (NFC, then JavaScript's toLowerCase, then final
-- sigma ς as σ), which filters call on columns that do not hold folded text. Built from:
-- - lower() under pg_c_utf8, the builtin provider's collation (PostgreSQL 17 and later; "Collation
--   Support"): Unicode simple case mapping, the same on every platform, unlike libc or ICU locales,
--   and not lower() under "C", which folds ASCII only. JavaScript's lower case (full mapping, no
--   locale) differs from the simple one in one letter only, İ (U+0130), which becomes i + U+0307:
--   replace() does it first. Its one context-dependent rule is final sigma, folded to σ either way.
-- - a translate() of the case pairs newer than PostgreSQL 17's Unicode 15.1 (Unicode 16.0 and 17.0,
--   which Node's ICU knows), to JavaScript's lower case before lower() sees them; only for values
--   that hold one, since translate() scans its whole list for every character.
-- All-ASCII values (octet_length = length in UTF-8) take lower() under "C" and skip normalize().
-- Both branches end COLLATE "C" only because CASE needs one collation: a call's result still takes
-- the collation of its argument (PostgreSQL, "Collation Support"), as for any function.
-- NULL gives NULL, as on SQLite. test/postgres/fold.test.ts compares every code point with foldCase
-- of the running Node: a server or Node with a newer Unicode than this list knows fails it, and a
-- new migration then replaces this function.
CREATE FUNCTION scim_fold(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN octet_length(value) = length(value) THEN lower(value COLLATE "C")
    ELSE translate(lower(replace(
      CASE WHEN value ~ '[ᲉꟋ-Ꟍ꟎꟒꟔ꟚꟜ𐵐-𐵥𖺠-𖺸]'
        THEN translate(normalize(value, NFC), 'ᲉꟋꟌ꟎꟒꟔ꟚꟜ𐵐𐵑𐵒𐵓𐵔𐵕𐵖𐵗𐵘𐵙𐵚𐵛𐵜𐵝𐵞𐵟𐵠𐵡𐵢𐵣𐵤𐵥𖺠𖺡𖺢𖺣𖺤𖺥𖺦𖺧𖺨𖺩𖺪𖺫𖺬𖺭𖺮𖺯𖺰𖺱𖺲𖺳𖺴𖺵𖺶𖺷𖺸', 'ᲊɤꟍ꟏ꟓꟕꟛƛ𐵰𐵱𐵲𐵳𐵴𐵵𐵶𐵷𐵸𐵹𐵺𐵻𐵼𐵽𐵾𐵿𐶀𐶁𐶂𐶃𐶄𐶅𖺻𖺼𖺽𖺾𖺿𖻀𖻁𖻂𖻃𖻄𖻅𖻆𖻇𖻈𖻉𖻊𖻋𖻌𖻍𖻎𖻏𖻐𖻑𖻒𖻓')
        ELSE normalize(value, NFC) END,
      'İ', 'i̇') COLLATE pg_c_utf8), 'ς', 'σ') COLLATE "C" END
$$;
