CREATE TABLE IF NOT EXISTS vio_small (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS vio_big (id bigint PRIMARY KEY);
CREATE TABLE IF NOT EXISTS vio_child (
    id        bigint PRIMARY KEY,
    small_id  bigint NOT NULL CONSTRAINT vio_child_small_fk REFERENCES vio_small (id)
);
