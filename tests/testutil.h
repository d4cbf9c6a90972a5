/* testutil.h — helpers shared by the test suites: locating ../shared, reading files,
 * replaying fuzz corpora, running the ponder binary. */
#ifndef PONDER_TESTUTIL_H
#define PONDER_TESTUTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Absolute-or-relative path of shared/<rel>, from $PONDER_SHARED, else the build-time
 * default ($PONDER_SHARED_DEFAULT), else "../shared". Returns a static buffer per call
 * slot (8 rotating slots), so a few results can be used at once. */
const char *tu_shared(const char *rel);

/* True if shared/<rel> exists (some fixtures are made on demand). */
bool tu_shared_exists(const char *rel);

/* Reads a whole file into a malloc'ed buffer (NUL-terminated, *len excludes the NUL).
 * Returns NULL on error. */
char *tu_read_file(const char *path, size_t *len);

/* dir/name in a rotating static buffer (32 slots, as tu_shared's): for a test's
 * temporary folder. */
const char *tu_path_in(const char *dir, const char *name);
/* Files in dir, dot-files not counted (to catch leftovers); -1 if dir cannot be read. */
int tu_count_files(const char *dir);

/* A fuzz corpus replayed as a test (every fuzz/<parser>_fuzz.c harness has one): each file
 * of dir (dot-files skipped, in readdir order) is read into a buffer of exactly its size,
 * so sanitizers see over-reads, run through fuzz_one (the harness's LLVMFuzzerTestOneInput,
 * which must return 0), then handed to check (may be NULL; it may change the bytes) with
 * its name, for the assertions the file's name prefix asks for. Returns the number of files, or -1 (with a
 * message on stderr) when dir cannot be read or the harness returned non-zero. */
typedef void (*tu_corpus_fn)(const char *name, uint8_t *data, size_t len, void *user);
int tu_corpus_replay(const char *dir, int (*fuzz_one)(const uint8_t *data, size_t size), tu_corpus_fn check,
                     void *user);

/* Result of running the built `ponder` binary. */
typedef struct tu_cli_result {
    int status; /* exit status; -1 if it could not run or was killed by a signal */
    char *out, *err;
    size_t out_len;
} tu_cli_result;

/* Runs $PONDER_BIN args... (NULL-terminated) with stdin from stdin_path (NULL: /dev/null)
 * and the current environment; stdout and stderr are captured whole. */
tu_cli_result tu_run_cli(const char *stdin_path, const char *const *args);
void tu_cli_result_free(tu_cli_result *r);
#define TU_RUN_CLI(in, ...) tu_run_cli(in, (const char *const[]){ __VA_ARGS__, NULL })

/* Resolves a model path as written in the reference JSONs ("shared/models/..."): the file
 * under the shared folder if present, else the same base name in $PONDER_FIXTURES (where
 * scripts/make-fixtures.sh writes the on-demand synthetic models), else the build-time
 * default fixtures folder. Returns NULL if none exists. Static rotating buffer as tu_shared. */
const char *tu_model_path(const char *ref_path);

#endif
