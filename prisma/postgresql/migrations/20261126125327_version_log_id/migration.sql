-- Versions point at their signed-log entry by id (an always-increasing key, so the index costs
-- an append) instead of by (peer, cid) (a unique index with random inserts on every commit).
-- Hand-edited: existing versions get the id of their command, found through (peer, cid).

-- AlterTable
ALTER TABLE "object_version" ADD COLUMN "log_id" INTEGER;
UPDATE "object_version" v SET "log_id" = l."id" FROM "command_log" l WHERE l."peer" = v."peer" AND l."cid" = v."cid";
ALTER TABLE "object_version" ALTER COLUMN "log_id" SET NOT NULL;

-- DropForeignKey
ALTER TABLE "object_version" DROP CONSTRAINT "object_version_peer_cid_fkey";

-- DropIndex
DROP INDEX "object_version_peer_cid_key";

-- AlterTable
ALTER TABLE "object_version" DROP COLUMN "cid";

-- CreateIndex
CREATE UNIQUE INDEX "object_version_log_id_key" ON "object_version"("log_id");

-- AddForeignKey
ALTER TABLE "object_version" ADD CONSTRAINT "object_version_log_id_fkey" FOREIGN KEY ("log_id") REFERENCES "command_log"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
