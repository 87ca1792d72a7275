// The `infermark` command line: subcommands run, probe, list, ... Returns the process exit code
// (0 ok, 1 a verification failure or regression, 2 bad input / usage error).
#pragma once

namespace infermark {
int cli_main(int argc, char** argv);
}
