// Thread pinning through hwloc (internal to backends/).
#pragma once
#include "backends/backend.hpp"

namespace infermark {

// Binds the calling thread to the core chosen for worker `ithr` (cores in hwloc logical order, wrapping
// around) when policy is core; returns a one-worker report. With policy none it does nothing.
pin_report pin_this_thread_for(pin_policy policy, int ithr);
// Merges per-worker reports (index = ithr) into one.
pin_report merge_pin_reports(pin_policy policy, const std::vector<pin_report>& per_worker);

}  // namespace infermark
