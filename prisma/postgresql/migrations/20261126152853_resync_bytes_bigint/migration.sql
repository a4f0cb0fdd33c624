-- AlterTable
ALTER TABLE "resync_run" ALTER COLUMN "bytes_sent" SET DATA TYPE BIGINT,
ALTER COLUMN "bytes_received" SET DATA TYPE BIGINT;
