-- CreateTable
CREATE TABLE "webhook_event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "peer" TEXT NOT NULL,
    "reference_id" TEXT,
    "cid" TEXT,
    "kind" TEXT NOT NULL,
    "detail" TEXT,
    "created_at" DATETIME NOT NULL,
    "delivered_at" DATETIME
);

-- CreateIndex
CREATE INDEX "webhook_event_delivered_at_id_idx" ON "webhook_event"("delivered_at", "id");
