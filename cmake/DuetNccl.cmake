# duet_find_nccl(): finds NCCL's library and header for the NCCL communicator.
#
# Where NCCL lives depends on how it was installed, and the search covers each:
#   - a CUDA toolkit or system package: libnccl.so (the development symlink) next to the
#     toolkit's libraries, nccl.h next to its headers;
#   - PyPI's nvidia-nccl-cu12/cu13 wheel, which torch users have: site-packages/nvidia/nccl with
#     lib/libnccl.so.2 only (no libnccl.so symlink) and include/nccl.h. The wheel sits beside
#     torch's own package directory, so TORCH_INSTALL_PREFIX (set by find_package(Torch)) finds it;
#   - a prefix named by NCCL_ROOT (or the NCCL_ROOT environment variable), either layout.
# The versioned name is searched for explicitly, since find_library only adds ".so" to a bare
# name, and NAMES_PER_DIR makes the places above win, in that order, over a libnccl.so in a
# default system directory. Results: DUET_NCCL_LIBRARY, DUET_NCCL_INCLUDE_DIR (cache) and DUET_NCCL_ORIGIN (a word
# for the configure log: toolkit, wheel, NCCL_ROOT or system).
function(duet_find_nccl)
  set(wheel_dirs "")
  if(TORCH_INSTALL_PREFIX)
    # TORCH_INSTALL_PREFIX is site-packages/torch; the wheel is site-packages/nvidia/nccl.
    get_filename_component(site_packages "${TORCH_INSTALL_PREFIX}" DIRECTORY)
    list(APPEND wheel_dirs "${site_packages}/nvidia/nccl")
  endif()
  set(root_dirs "")
  if(NCCL_ROOT)
    list(APPEND root_dirs "${NCCL_ROOT}")
  elseif(DEFINED ENV{NCCL_ROOT})
    list(APPEND root_dirs "$ENV{NCCL_ROOT}")
  endif()
  set(toolkit_lib_dirs "")
  set(toolkit_include_dirs "")
  if(CUDAToolkit_LIBRARY_DIR)
    list(APPEND toolkit_lib_dirs "${CUDAToolkit_LIBRARY_DIR}")
  endif()
  if(CUDAToolkit_INCLUDE_DIRS)
    list(APPEND toolkit_include_dirs ${CUDAToolkit_INCLUDE_DIRS})
  endif()

  find_library(DUET_NCCL_LIBRARY NAMES nccl libnccl.so.2 NAMES_PER_DIR
               HINTS ${root_dirs} ${toolkit_lib_dirs} ${wheel_dirs}
               PATH_SUFFIXES lib lib64)
  find_path(DUET_NCCL_INCLUDE_DIR nccl.h
            HINTS ${root_dirs} ${toolkit_include_dirs} ${wheel_dirs}
            PATH_SUFFIXES include)

  # Which of the places above the library came from, for the configure log.
  set(origin "")
  if(DUET_NCCL_LIBRARY)
    set(origin "system")
  endif()
  foreach(candidate IN ITEMS "NCCL_ROOT|${root_dirs}" "CUDA toolkit|${toolkit_lib_dirs}"
                             "nvidia-nccl wheel|${wheel_dirs}")
    string(REPLACE "|" ";" parts "${candidate}")
    list(POP_FRONT parts word)
    foreach(dir IN LISTS parts)
      string(FIND "${DUET_NCCL_LIBRARY}" "${dir}/" at)
      if(at EQUAL 0 AND origin STREQUAL "system")
        set(origin "${word}")
      endif()
    endforeach()
  endforeach()
  set(DUET_NCCL_ORIGIN "${origin}" PARENT_SCOPE)
endfunction()
