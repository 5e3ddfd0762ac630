/* The public header must compile alone, first, with every warning on. */
#include <rdmig/rdmig.h>

int rdmig_header_check_anchor(void);
int rdmig_header_check_anchor(void)
{
	return RDMIG_VERSION_MAJOR;
}
