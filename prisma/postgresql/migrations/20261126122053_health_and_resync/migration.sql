-- CreateTable
CREATE TABLE "health_event" (
    "id" SERIAL NOT NULL,
    "peer" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "from_state" TEXT,
    "to_state" TEXT,
    "detail" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "health_event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "resync_run" (
    "id" SERIAL NOT NULL,
    "peer" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "started_at" TIMESTAMP(3) NOT NULL,
    "finished_at" TIMESTAMP(3),
    "outcome" TEXT,
    "objects_sent" INTEGER NOT NULL DEFAULT 0,
    "objects_received" INTEGER NOT NULL DEFAULT 0,
    "bytes_sent" INTEGER NOT NULL DEFAULT 0,
    "bytes_received" INTEGER NOT NULL DEFAULT 0,
    "rounds" INTEGER NOT NULL DEFAULT 0,
    "detail" TEXT NOT NULL DEFAULT '{}',

    CONSTRAINT "resync_run_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "health_event_peer_id_idx" ON "health_event"("peer", "id");

-- CreateIndex
CREATE INDEX "resync_run_peer_id_idx" ON "resync_run"("peer", "id");
