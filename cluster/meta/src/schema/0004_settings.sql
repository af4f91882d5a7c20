-- Version 4: cluster settings an operator changed at run time (kdss-cli repair throttle),
-- replicated so that every master, and a new leader in particular, applies the same value.
-- A key without a row takes its value from the master's config file.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
