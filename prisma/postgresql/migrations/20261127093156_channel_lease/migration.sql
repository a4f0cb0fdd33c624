-- CreateTable
CREATE TABLE "channel_lease" (
    "peer" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expires_at" BIGINT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "channel_lease_pkey" PRIMARY KEY ("peer")
);
