-- AlterTable
ALTER TABLE "Video" ADD COLUMN     "durationSeconds" INTEGER NOT NULL DEFAULT 0;
