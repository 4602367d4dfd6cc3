# make install: headers, the static library, a CMake package (find_package(nbio)) and nbio.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS nbio EXPORT nbioTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/nbio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT nbioTargets NAMESPACE nbio:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nbio)

file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/nbioConfig.cmake.in
  "@PACKAGE_INIT@\ninclude(CMakeFindDependencyMacro)\nfind_dependency(Threads)\nfind_dependency(OpenSSL 3)\nfind_dependency(ZLIB)\nfind_dependency(PkgConfig)\npkg_check_modules(URING REQUIRED IMPORTED_TARGET liburing)\n"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/nbioTargets.cmake\")\n")
configure_package_config_file(${CMAKE_CURRENT_BINARY_DIR}/nbioConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/nbioConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nbio)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/nbioConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nbioConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/nbioConfigVersion.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/nbio)

file(RELATIVE_PATH NBIO_PC_PREFIX_FROM_PCDIR ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig
  ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" NBIO_PC_PREFIX_FROM_PCDIR "${NBIO_PC_PREFIX_FROM_PCDIR}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/nbio.pc.in ${CMAKE_CURRENT_BINARY_DIR}/nbio.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/nbio.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
