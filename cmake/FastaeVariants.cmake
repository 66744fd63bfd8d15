# FastaeVariants.cmake -- portable builds (FASTAE_PORTABLE, for wheels): the engine compiled once per
# instruction set, each copy linked into its own extension module, so that a wheel never assumes the
# build machine's CPU; python/fastae/_loader.py picks one at import time.
#
# Why separate modules and not one module with per-ISA translation units: the engine is Eigen
# templates, instantiated as inline/weak symbols in every translation unit that uses them. Linked
# into one binary, the AVX2 and the AVX-512 units share those instantiations and the linker keeps
# one copy for both, so the "AVX2" path can run AVX-512 code. Each module here is a shared object
# of its own (pybind11 builds them with hidden symbols) holding only code for its instruction set.
#
# Two parts. Included near the top of CMakeLists.txt (before the kernel flags), this file sets
# FASTAE_ARCH to the baseline of a portable build, so the fastae library, its C++ tests and the
# static library installed for C++ hosts are the AVX2 baseline. fastae_add_portable_modules(),
# called at the end of CMakeLists.txt, copies fastae and fastae_kernel_flags for the other
# variants once every source and flag has been added to them, changing only -march.

option(FASTAE_PORTABLE
       "For wheels: one Python module per instruction set (AVX2, AVX-512), picked at import, not one for FASTAE_ARCH"
       OFF)

# FASTAE_VARIANTS: the variants to build, baseline first; FASTAE_VARIANT_ARCH_<variant>: its -march.
set(FASTAE_VARIANTS "")
if(FASTAE_PORTABLE)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    # The x86-64 psABI levels. v3: AVX, AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE (Haswell, Zen 1 and
    # later); v4: v3 + AVX-512 F, BW, CD, DQ, VL (Skylake-SP, Zen 4 and later).
    set(FASTAE_VARIANTS avx2 avx512)
    set(FASTAE_VARIANT_ARCH_avx2 x86-64-v3)
    set(FASTAE_VARIANT_ARCH_avx512 x86-64-v4)
    include(CheckCXXCompilerFlag)
    check_cxx_compiler_flag(-march=x86-64-v4 FASTAE_COMPILER_KNOWS_X86_64_V4)
    if(NOT FASTAE_COMPILER_KNOWS_X86_64_V4)
      message(FATAL_ERROR "FASTAE_PORTABLE needs a compiler that accepts -march=x86-64-v3 and -march=x86-64-v4 "
                          "(GCC >= 11, Clang >= 12); ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} does not")
    endif()
  else()
    # Elsewhere one module for the compiler's default instruction set (on aarch64 that includes NEON).
    set(FASTAE_VARIANTS generic)
    set(FASTAE_VARIANT_ARCH_generic none)
  endif()
  list(GET FASTAE_VARIANTS 0 _fastae_baseline)
  if(NOT FASTAE_ARCH STREQUAL "native" AND NOT FASTAE_ARCH STREQUAL FASTAE_VARIANT_ARCH_${_fastae_baseline})
    message(WARNING "FASTAE_PORTABLE is ON: FASTAE_ARCH=${FASTAE_ARCH} is ignored (the variants set their own)")
  endif()
  # A normal variable, shadowing the cache entry: the kernel flags below CMakeLists.txt's include read it.
  set(FASTAE_ARCH ${FASTAE_VARIANT_ARCH_${_fastae_baseline}})
  message(STATUS "fastae: portable build: modules ${FASTAE_VARIANTS}; the fastae library (tests, C++ hosts) "
                 "is compiled for ${FASTAE_ARCH}")
endif()

# Replaces a whole-word fastae_kernel_flags by fastae_kernel_flags_<variant> in `value` (a list,
# possibly holding generator expressions such as $<BUILD_INTERFACE:fastae_kernel_flags>).
function(_fastae_rename_flags out value variant)
  string(REGEX REPLACE "(^|[^A-Za-z0-9_])fastae_kernel_flags($|[^A-Za-z0-9_])"
         "\\1fastae_kernel_flags_${variant}\\2" value "${value}")
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

# fastae_kernel_flags_<variant> and fastae_<variant>: copies of fastae_kernel_flags (with -march
# replaced) and of the fastae library (same sources, include folders, definitions, dependencies),
# so that what is added to those two targets elsewhere reaches every variant.
function(_fastae_add_engine_variant variant arch)
  set(flags fastae_kernel_flags_${variant})
  add_library(${flags} INTERFACE)
  get_target_property(options fastae_kernel_flags INTERFACE_COMPILE_OPTIONS)
  if(NOT options)
    set(options "")
  endif()
  list(FILTER options EXCLUDE REGEX "^-march=")
  if(NOT arch STREQUAL "none")
    list(PREPEND options -march=${arch})
  endif()
  set_property(TARGET ${flags} PROPERTY INTERFACE_COMPILE_OPTIONS "${options}")
  foreach(property IN ITEMS INTERFACE_COMPILE_DEFINITIONS INTERFACE_INCLUDE_DIRECTORIES INTERFACE_LINK_OPTIONS
                            INTERFACE_LINK_LIBRARIES)
    get_target_property(value fastae_kernel_flags ${property})
    if(value)
      set_property(TARGET ${flags} PROPERTY ${property} "${value}")
    endif()
  endforeach()

  get_target_property(sources fastae SOURCES)
  add_library(fastae_${variant} STATIC ${sources})
  foreach(property IN ITEMS INCLUDE_DIRECTORIES INTERFACE_INCLUDE_DIRECTORIES COMPILE_DEFINITIONS
                            INTERFACE_COMPILE_DEFINITIONS COMPILE_OPTIONS INTERFACE_COMPILE_OPTIONS COMPILE_FEATURES
                            INTERFACE_COMPILE_FEATURES LINK_LIBRARIES INTERFACE_LINK_LIBRARIES LINK_OPTIONS
                            POSITION_INDEPENDENT_CODE CXX_EXTENSIONS CXX_STANDARD CXX_STANDARD_REQUIRED)
    get_target_property(value fastae ${property})
    if(NOT value STREQUAL "value-NOTFOUND")
      _fastae_rename_flags(value "${value}" ${variant})
      set_property(TARGET fastae_${variant} PROPERTY ${property} "${value}")
    endif()
  endforeach()
endfunction()

# The extension modules _core_<variant>, installed into the package beside the Python files. Every
# one exports PyInit__core: the loader imports it under the name fastae._core, so classes and
# exceptions are fastae._core.* whichever variant runs (pickles do not name a CPU), and no variant
# can be imported by its file name by mistake. The binding's sources are those of _core
# (FASTAE_BINDING_SOURCES, CMakeLists.txt).
function(fastae_add_portable_modules)
  find_package(Python 3.9 REQUIRED COMPONENTS Interpreter Development.Module)
  find_package(pybind11 CONFIG REQUIRED)
  list(GET FASTAE_VARIANTS 0 baseline)
  foreach(variant IN LISTS FASTAE_VARIANTS)
    if(variant STREQUAL baseline)
      set(engine fastae)  # already compiled for the baseline (FASTAE_ARCH above)
      set(flags fastae_kernel_flags)
    else()
      _fastae_add_engine_variant(${variant} ${FASTAE_VARIANT_ARCH_${variant}})
      set(engine fastae_${variant})
      set(flags fastae_kernel_flags_${variant})
    endif()
    pybind11_add_module(_core_${variant} ${FASTAE_BINDING_SOURCES})
    target_link_libraries(_core_${variant} PRIVATE ${engine} ${flags})
    install(TARGETS _core_${variant} LIBRARY DESTINATION fastae)
  endforeach()
endfunction()
