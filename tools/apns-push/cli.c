/* apns-push's main(): the process-wide settings, then the command (push_main in main.c). Everything else lives in
 * the apns_push library so that the tests can run the pipeline in-process. */
#include "push.h"

#include <signal.h>

int main(int argc, char **argv) {
  /* A peer that resets the connection mid-write, or a reader of stdout that goes away, must cost an EPIPE (each
   * result still accounted for, the run stopped cleanly) and never the process with every buffered line. */
  signal(SIGPIPE, SIG_IGN);
  /* The block cache is the command's alone: the tests' build of the pipeline counts every allocation instead. */
  push_blocks_install();
  int rc = push_main(argc, argv);
  push_blocks_release();
  return rc;
}
