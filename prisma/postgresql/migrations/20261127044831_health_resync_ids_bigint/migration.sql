-- PostgreSQL only (SQLite's INTEGER is 64-bit). Hand-edited as 20261126150339 was: Prisma
-- generates `SET DATA TYPE BIGSERIAL`, which PostgreSQL refuses. The ids of the health history
-- and of the resync runs outgrow INTEGER after 2^31 - 1 rows (a node with many flapping channels
-- writes a transition each time): the columns become BIGINT, and the sequences SERIAL made
-- `AS integer` become bigint sequences. Both tables are rewritten under an exclusive lock. They
-- hold history only, and no command waits on them.

-- AlterTable
ALTER TABLE "health_event" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "health_event_id_seq" AS BIGINT;

-- AlterTable
ALTER TABLE "resync_run" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "resync_run_id_seq" AS BIGINT;
