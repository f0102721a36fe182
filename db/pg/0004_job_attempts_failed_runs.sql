-- Custom migration (drizzle-kit generate --custom): jobs.attempts now means failed runs so far, as on
-- SQLite, and no longer runs started (the claim counted the run it started, as its fencing token;
-- jobs.lease_token is that token now). A done job's count included its successful run: take it off.
-- Pending and dead jobs already counted failed runs (and runs cut short by a dead instance, which
-- are no longer counted from here on); running jobs keep theirs, since an instance of the earlier
-- release may still finish them fenced on that number.
UPDATE jobs SET attempts = attempts - 1 WHERE state = 'done' AND attempts > 0;
