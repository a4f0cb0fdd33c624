-- CreateTable
CREATE TABLE "health_event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "peer" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "from_state" TEXT,
    "to_state" TEXT,
    "detail" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "resync_run" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "peer" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "started_at" DATETIME NOT NULL,
    "finished_at" DATETIME,
    "outcome" TEXT,
    "objects_sent" INTEGER NOT NULL DEFAULT 0,
    "objects_received" INTEGER NOT NULL DEFAULT 0,
    "bytes_sent" INTEGER NOT NULL DEFAULT 0,
    "bytes_received" INTEGER NOT NULL DEFAULT 0,
    "rounds" INTEGER NOT NULL DEFAULT 0,
    "detail" TEXT NOT NULL DEFAULT '{}'
);

-- CreateIndex
CREATE INDEX "health_event_peer_id_idx" ON "health_event"("peer", "id");

-- CreateIndex
CREATE INDEX "resync_run_peer_id_idx" ON "resync_run"("peer", "id");
