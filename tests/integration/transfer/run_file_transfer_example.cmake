# Runs examples/file_transfer: it sends FILE to itself over loopback UDP into
# a fresh download dir; the copy must be byte for byte the original.
#   cmake -DEXAMPLE=path/to/file_transfer -DFILE=what/to/send -DWORK=dir -P this
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/downloads")
execute_process(COMMAND "${EXAMPLE}" "${FILE}" "${WORK}/downloads"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "file_transfer failed (${rc}):\n${out}${err}")
endif()
get_filename_component(name "${FILE}" NAME)
set(copy "${WORK}/downloads/example_${name}")
if(NOT out MATCHES "sender: done" OR NOT out MATCHES "receiver: done, [^\n]*example_${name}"
   OR NOT EXISTS "${copy}")
  message(FATAL_ERROR "file_transfer did not report both outcomes:\n${out}${err}")
endif()
file(SHA256 "${FILE}" expected)
file(SHA256 "${copy}" got)
if(NOT expected STREQUAL got)
  message(FATAL_ERROR "the received copy differs from ${FILE}")
endif()
file(REMOVE_RECURSE "${WORK}")
