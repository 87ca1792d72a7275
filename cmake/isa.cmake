# Per-ISA source files: a file named *_avx512.cpp, *_avx512vbmi.cpp, *_amx.cpp, *_avx2.cpp or *_neon.cpp is compiled with that ISA's
# flags (x86-64 / aarch64 only) and is only ever called after run-time dispatch has checked the CPU.
# Everything else is compiled for the baseline ISA, so one binary runs on any machine of the architecture.
set(INFERMARK_X86 OFF)
set(INFERMARK_ARM OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  set(INFERMARK_X86 ON)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(INFERMARK_ARM ON)
endif()

set(INFERMARK_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni -mfma -mf16c)
set(INFERMARK_AVX2_FLAGS -mavx2 -mfma -mf16c)

# infermark_isa_sources(<out_var> <sources...>): drops sources for other architectures, tags ISA flags.
function(infermark_isa_sources out)
  set(kept)
  foreach(src IN LISTS ARGN)
    if(src MATCHES "_avx512\\.cpp$")
      if(INFERMARK_X86)
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${INFERMARK_AVX512_FLAGS}")
        list(APPEND kept ${src})
      endif()
    elseif(src MATCHES "_avx512vbmi\\.cpp$")
      # AVX-512 plus VBMI (byte permutes) and GFNI (bit-matrix byte transforms): kept out of the plain
      # AVX-512 files so the compiler cannot use them there (Skylake-X and Cooper Lake have AVX-512
      # without either; Ice Lake, Sapphire Rapids and Zen 4 / 5 have both); called only when detected.
      if(INFERMARK_X86)
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${INFERMARK_AVX512_FLAGS};-mavx512vbmi;-mgfni")
        list(APPEND kept ${src})
      endif()
    elseif(src MATCHES "_amx\\.cpp$")
      # AVX-512 plus VBMI and the AMX tile instructions (Sapphire Rapids and later all have VBMI); called
      # only when detected.
      if(INFERMARK_X86)
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${INFERMARK_AVX512_FLAGS};-mavx512vbmi;-mamx-tile;-mamx-bf16;-mamx-int8")
        list(APPEND kept ${src})
      endif()
    elseif(src MATCHES "_avx2\\.cpp$")
      if(INFERMARK_X86)
        set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "${INFERMARK_AVX2_FLAGS}")
        list(APPEND kept ${src})
      endif()
    elseif(src MATCHES "_neon\\.cpp$")
      if(INFERMARK_ARM)
        list(APPEND kept ${src})
      endif()
    else()
      list(APPEND kept ${src})
    endif()
  endforeach()
  set(${out} ${kept} PARENT_SCOPE)
endfunction()
