-- AlterTable
-- Written by hand: `prisma migrate diff` proposes rebuilding the table (copy into new_Video, drop,
-- rename), which takes the write lock for the whole copy. SQLite adds a NOT NULL column with a
-- constant default in place, and the previous release keeps working (it never selects the column).
ALTER TABLE "Video" ADD COLUMN "durationSeconds" INTEGER NOT NULL DEFAULT 0;
