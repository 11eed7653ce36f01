/* demo.c -- `tally demo` (written next). */
#include "cmd.h"
#include <stdio.h>
int tl_cmd_demo(int argc, char **argv)
{
    fprintf(stderr, "tally: demo is not available in this build\n");
    return 1;
}
