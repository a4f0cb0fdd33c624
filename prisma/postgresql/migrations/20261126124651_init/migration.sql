-- CreateTable
CREATE TABLE "identity" (
    "id" INTEGER NOT NULL,
    "epoch" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "identity_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "peer" (
    "address" TEXT NOT NULL,
    "public_key_hex" TEXT NOT NULL,
    "epoch" TEXT,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "peer_pkey" PRIMARY KEY ("address")
);

-- CreateTable
CREATE TABLE "command_log" (
    "id" SERIAL NOT NULL,
    "peer" TEXT NOT NULL,
    "cid" TEXT NOT NULL,
    "direction" TEXT NOT NULL,
    "reference_id" TEXT NOT NULL,
    "read_version" TEXT,
    "write_version" TEXT NOT NULL,
    "request_jws" TEXT NOT NULL,
    "response_jws" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "error_code" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "command_log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "object_version" (
    "peer" TEXT NOT NULL,
    "reference_id" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "previous_version" TEXT,
    "payment" TEXT NOT NULL,
    "open" BOOLEAN NOT NULL,
    "log_id" INTEGER NOT NULL,

    CONSTRAINT "object_version_pkey" PRIMARY KEY ("peer","reference_id","version")
);

-- CreateTable
CREATE TABLE "object_head" (
    "peer" TEXT NOT NULL,
    "reference_id" TEXT NOT NULL,
    "head_version" TEXT NOT NULL,
    "open" BOOLEAN NOT NULL,
    "version_count" INTEGER NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "object_head_pkey" PRIMARY KEY ("peer","reference_id")
);

-- CreateTable
CREATE TABLE "outbox" (
    "peer" TEXT NOT NULL,
    "cid" TEXT NOT NULL,
    "reference_id" TEXT NOT NULL,
    "read_version" TEXT,
    "write_version" TEXT NOT NULL,
    "request_jws" TEXT NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("peer","cid")
);

-- CreateIndex
CREATE INDEX "command_log_peer_reference_id_idx" ON "command_log"("peer", "reference_id");

-- CreateIndex
CREATE UNIQUE INDEX "command_log_peer_cid_key" ON "command_log"("peer", "cid");

-- CreateIndex
CREATE UNIQUE INDEX "object_version_log_id_key" ON "object_version"("log_id");

-- CreateIndex
CREATE UNIQUE INDEX "object_version_peer_reference_id_previous_version_key" ON "object_version"("peer", "reference_id", "previous_version");

-- CreateIndex
CREATE INDEX "object_head_peer_open_reference_id_idx" ON "object_head"("peer", "open", "reference_id");

-- AddForeignKey
ALTER TABLE "object_version" ADD CONSTRAINT "object_version_log_id_fkey" FOREIGN KEY ("log_id") REFERENCES "command_log"("id") ON DELETE RESTRICT ON UPDATE RESTRICT;
