-- CreateTable
CREATE TABLE "replica_heartbeat" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "expires_at" INTEGER NOT NULL,
    "updated_at" DATETIME NOT NULL
);
