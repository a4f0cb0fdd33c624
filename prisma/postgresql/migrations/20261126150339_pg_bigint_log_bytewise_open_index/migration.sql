-- PostgreSQL only: SQLite needs neither change (its INTEGER is 64-bit, its default collation is
-- bytewise). Both parts are hand-edited.
--
-- 1. The signed log's ids (and the versions' references to them) outgrow INTEGER after 2^31 - 1
--    commands. Prisma generates `SET DATA TYPE BIGSERIAL` (and a dropped and re-added primary
--    key), which PostgreSQL refuses: the column becomes BIGINT, and the sequence SERIAL made
--    `AS integer` (so capped at 2^31 - 1) becomes a bigint sequence. Both tables are rewritten
--    under an exclusive lock: on a large store, plan a maintenance window for this migration.

-- DropForeignKey
ALTER TABLE "object_version" DROP CONSTRAINT "object_version_log_id_fkey";

-- AlterTable
ALTER TABLE "command_log" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "command_log_id_seq" AS BIGINT;

-- AlterTable
ALTER TABLE "object_version" ALTER COLUMN "log_id" SET DATA TYPE BIGINT;

-- AddForeignKey
ALTER TABLE "object_version" ADD CONSTRAINT "object_version_log_id_fkey" FOREIGN KEY ("log_id") REFERENCES "command_log"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;

-- 2. `openObjects` pages through a peer's open objects in byte order of reference_id
--    (`reference_id COLLATE "C"`, src/store/dialect.ts), so that peers on either engine agree.
--    An index in the database's default collation cannot serve that ORDER BY, so every page
--    sorted all the peer's open objects. The index keeps its name and columns, so schema.prisma's
--    @@index([peer, open, referenceId]) still describes it: Prisma can neither state nor see an
--    index column's collation, which is why only this migration says "C".
--    test/store/postgresql-schema.int.test.ts checks the definition and the plan.

-- DropIndex
DROP INDEX "object_head_peer_open_reference_id_idx";

-- CreateIndex
CREATE INDEX "object_head_peer_open_reference_id_idx" ON "object_head"("peer", "open", "reference_id" COLLATE "C");
