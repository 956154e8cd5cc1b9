# Standalone Asio is header-only and Debian ships no CMake package for it.
if(NOT TARGET tessenger_asio)
  find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
  add_library(tessenger_asio INTERFACE)
  target_include_directories(tessenger_asio SYSTEM INTERFACE "${ASIO_INCLUDE_DIR}")
  target_compile_definitions(tessenger_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14 supports coroutines but Asio 1.22 does not detect it.
    target_compile_definitions(tessenger_asio INTERFACE ASIO_HAS_CO_AWAIT ASIO_HAS_STD_COROUTINE)
  endif()
  target_link_libraries(tessenger_asio INTERFACE Threads::Threads)
endif()
