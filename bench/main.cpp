#include "bench/cli.hpp"

int main(int argc, char** argv) { return infermark::cli_main(argc, argv); }
