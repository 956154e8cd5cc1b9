# Warnings and sanitizers for project targets only (never for consumers).
add_library(tessenger_warnings INTERFACE)
target_compile_options(tessenger_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow)
if(TESSENGER_WERROR)
  target_compile_options(tessenger_warnings INTERFACE -Werror)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC's flow analysis at -O3 and under sanitizer instrumentation reports
  # false positives inside the standard library (std::function, <regex>);
  # -Wuninitialized still catches the definite cases.
  target_compile_options(tessenger_warnings INTERFACE -Wno-maybe-uninitialized)
  if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 at -O3 reports impossible overlaps inside std::string's inlined
    # operator+ (GCC bug 105329).
    target_compile_options(tessenger_warnings INTERFACE -Wno-restrict)
  endif()
endif()

if(TESSENGER_SANITIZE)
  set(_san "-fsanitize=${TESSENGER_SANITIZE}")
  if(TESSENGER_SANITIZE MATCHES "undefined")
    string(APPEND _san ";-fno-sanitize-recover=undefined")
  endif()
  if(TESSENGER_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's atomic_thread_fence is not understood by TSan; the warning is noise.
    target_compile_options(tessenger_warnings INTERFACE -Wno-tsan)
  endif()
  add_compile_options(${_san} -fno-omit-frame-pointer)
  add_link_options(${_san})
endif()
