-- CreateTable
CREATE TABLE "restore_cursor" (
    "peer" TEXT NOT NULL PRIMARY KEY,
    "reason" TEXT NOT NULL,
    "after" TEXT,
    "compared" INTEGER NOT NULL DEFAULT 0,
    "moved" INTEGER NOT NULL DEFAULT 0,
    "started_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "finished_at" DATETIME
);
