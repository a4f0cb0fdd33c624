-- CreateTable
CREATE TABLE "replica_heartbeat" (
    "id" TEXT NOT NULL,
    "expires_at" BIGINT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "replica_heartbeat_pkey" PRIMARY KEY ("id")
);
