-- Version 5: who a stripe, a session and an open handle belong to (issue 16, least privilege
-- on the data path). ReplaceShard moves only a stripe its own writer is still writing;
-- Release and KeepAlive act only on handles and sessions of the caller that made them.
-- Rows from before this version have owner '' (matched by session name alone, as before).

ALTER TABLE stripes ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE opens ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE opens ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
