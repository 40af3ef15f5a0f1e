-- A random token written with each new issue document, so that a process that decoded a
-- document before can tell that it is still the one stored without reading it again.
ALTER TABLE issues ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
