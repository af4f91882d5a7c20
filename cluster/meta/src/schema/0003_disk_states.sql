-- Version 3: the master's verdict on each disk that is not plainly online. A disk without
-- a row is online. Rows are written only through the replicated SetDiskStateOp, so every
-- master, and a newly elected leader in particular, sees the same states.

CREATE TABLE disk_states (
    disk_id  INTEGER PRIMARY KEY,
    node_id  TEXT NOT NULL,
    status   INTEGER NOT NULL,  -- DiskStatus: 2 suspect, 3 offline, 4 draining
    reason   TEXT NOT NULL,
    since_ns INTEGER NOT NULL,
    operator INTEGER NOT NULL   -- 1 when set by hand (the automatic pass leaves it alone)
);
CREATE INDEX disk_states_status ON disk_states (status, disk_id);
