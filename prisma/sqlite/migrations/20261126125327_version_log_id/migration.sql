-- Versions point at their signed-log entry by id (an always-increasing key, so the index costs
-- an append) instead of by (peer, cid) (a unique index with random inserts on every commit).
-- Hand-edited: existing versions get the id of their command, found through (peer, cid).

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_object_version" (
    "peer" TEXT NOT NULL,
    "reference_id" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "previous_version" TEXT,
    "payment" TEXT NOT NULL,
    "open" BOOLEAN NOT NULL,
    "log_id" INTEGER NOT NULL,

    PRIMARY KEY ("peer", "reference_id", "version"),
    CONSTRAINT "object_version_log_id_fkey" FOREIGN KEY ("log_id") REFERENCES "command_log" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT
);
INSERT INTO "new_object_version" ("open", "payment", "peer", "previous_version", "reference_id", "version", "log_id")
SELECT v."open", v."payment", v."peer", v."previous_version", v."reference_id", v."version", l."id"
FROM "object_version" v JOIN "command_log" l ON l."peer" = v."peer" AND l."cid" = v."cid";
DROP TABLE "object_version";
ALTER TABLE "new_object_version" RENAME TO "object_version";
CREATE UNIQUE INDEX "object_version_log_id_key" ON "object_version"("log_id");
CREATE UNIQUE INDEX "object_version_peer_reference_id_previous_version_key" ON "object_version"("peer", "reference_id", "previous_version");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
