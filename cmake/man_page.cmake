# Writes OUT, the trialsim(1) manual page, from the program's own help texts (trialsim --help and
# each subcommand's), so that the page and --help never disagree:
#   cmake -DBIN=<trialsim executable> -DOUT=<file> -DVERSION=<x.y.z> -P cmake/man_page.cmake
execute_process(COMMAND "${BIN}" --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man page: ${BIN} --help failed (${rc})")
endif()

# A help text as roff: a no-fill block, backslashes doubled, lines starting with . or ' escaped,
# and the program's path in the usage line shown as its name.
function(roff_block text out)
  string(REGEX REPLACE "Usage: [^ \n]*trialsim" "Usage: trialsim" text "${text}")
  string(REPLACE "\\" "\\\\" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${out} ".nf\n${text}.fi\n" PARENT_SCOPE)
endfunction()

# The subcommands, as the top-level help lists them.
string(REGEX MATCH "Subcommands:\n(.*)" _ "${top}")
set(list "${CMAKE_MATCH_1}")
string(REGEX MATCHALL "\n  [a-z]+ " names "\n${list}")
set(page ".TH TRIALSIM 1 \"\" \"trialsim ${VERSION}\" \"User Commands\"\n")
string(APPEND page ".SH NAME\ntrialsim \\- Monte Carlo simulation of randomized trial designs\n")
string(APPEND page ".SH SYNOPSIS\n.B trialsim\n.I command\n[\n.I options\n]\n")
string(APPEND page ".SH DESCRIPTION\n")
roff_block("${top}" block)
string(APPEND page "${block}")
string(APPEND page ".SH COMMANDS\n")
foreach(n IN LISTS names)
  string(STRIP "${n}" n)
  execute_process(COMMAND "${BIN}" ${n} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man page: ${BIN} ${n} --help failed (${rc})")
  endif()
  roff_block("${help}" block)
  string(APPEND page ".SS ${n}\n${block}")
endforeach()
string(APPEND page ".SH EXIT STATUS\n0 success; 1 internal error; 2 bad input (one line naming file:line, key and value);\n"
                   "3 an output could not be written; 130, 143, 129 interrupted by SIGINT, SIGTERM, SIGHUP.\n")
string(APPEND page ".SH SEE ALSO\nThe README installed with the program (share/doc/trialsim/README.md) and the scenarios in\n"
                   "share/trialsim/configs.\n")
file(WRITE "${OUT}" "${page}")
