// glibc's allocator controls (mallopt), which the Glibc module does not bring in.
#include <malloc.h>
