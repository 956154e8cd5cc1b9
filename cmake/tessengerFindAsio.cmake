# Installed with the tessenger package: finds the standalone Asio that
# tessenger's public headers include (header-only; Debian: libasio-dev) and
# makes it the tessenger::asio target. The definitions that must match
# tessenger's own come with tessenger::tessenger.
if(NOT TARGET tessenger::asio)
  find_path(TESSENGER_ASIO_INCLUDE_DIR asio.hpp)
  mark_as_advanced(TESSENGER_ASIO_INCLUDE_DIR)
  if(TESSENGER_ASIO_INCLUDE_DIR)
    add_library(tessenger::asio INTERFACE IMPORTED)
    set_target_properties(tessenger::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${TESSENGER_ASIO_INCLUDE_DIR}")
  endif()
endif()
