"""CSV import (products, stock levels, customers) with a dry-run preview, and streamed
CSV exports that open correctly in a Finnish Excel."""
