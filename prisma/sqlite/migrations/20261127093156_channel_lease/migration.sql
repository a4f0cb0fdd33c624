-- CreateTable
CREATE TABLE "channel_lease" (
    "peer" TEXT NOT NULL PRIMARY KEY,
    "owner" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires_at" INTEGER NOT NULL,
    "updated_at" DATETIME NOT NULL
);
