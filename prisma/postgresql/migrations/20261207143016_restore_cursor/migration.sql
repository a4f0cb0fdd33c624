-- CreateTable
CREATE TABLE "restore_cursor" (
    "peer" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "after" TEXT,
    "compared" INTEGER NOT NULL DEFAULT 0,
    "moved" INTEGER NOT NULL DEFAULT 0,
    "started_at" TIMESTAMP(3) NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "restore_cursor_pkey" PRIMARY KEY ("peer")
);
