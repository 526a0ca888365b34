/* File-system helpers shared by the library and the command line. */
#ifndef LETHE_IO_PATHS_H
#define LETHE_IO_PATHS_H

/* Create folder `dir` and any missing parents (as mkdir -p). Returns 0, or
 * -1 with errno set (ENOTDIR when a part exists and is not a folder). */
int io_mkdir_p(const char *dir);

/* Create the folder that holds file `path` (io_mkdir_p of its dirname);
 * a bare file name needs none. */
int io_mkdir_parent(const char *path);

#endif
