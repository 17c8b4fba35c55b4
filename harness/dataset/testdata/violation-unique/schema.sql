CREATE TABLE IF NOT EXISTS vio_codes (
    id    bigint PRIMARY KEY,
    code  text NOT NULL CONSTRAINT vio_codes_code_key UNIQUE
);
