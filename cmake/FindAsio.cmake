# Standalone Asio is header-only and Debian ships no CMake package for it.
# TESSENGER_ASIO_DEFINITIONS must be the same in every translation unit that
# includes Asio (the project's and its consumers'), so the internal target,
# the exported library and tessenger.pc all carry this one list.
if(NOT TARGET tessenger_asio)
  find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
  # The library is C++20: GCC's Asio finds coroutines on its own, clang 14's
  # does not, so naming them keeps every compiler's view of Asio alike.
  set(TESSENGER_ASIO_DEFINITIONS ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_HAS_CO_AWAIT
    ASIO_HAS_STD_COROUTINE)
  if(TESSENGER_SANITIZE MATCHES "address")
    # Asio's handler-memory recycler allocates with aligned_alloc and can free
    # with operator delete, which ASan reports as a mismatch (asio issue 999).
    list(APPEND TESSENGER_ASIO_DEFINITIONS ASIO_DISABLE_STD_ALIGNED_ALLOC)
  endif()
  add_library(tessenger_asio INTERFACE)
  target_include_directories(tessenger_asio SYSTEM INTERFACE "${ASIO_INCLUDE_DIR}")
  target_compile_definitions(tessenger_asio INTERFACE ${TESSENGER_ASIO_DEFINITIONS})
  target_link_libraries(tessenger_asio INTERFACE Threads::Threads)
endif()
