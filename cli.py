"""Run the fhir-dnacpr command line from a checkout: ``python cli.py --help``."""

from fhir_dnacpr.cli import main

if __name__ == "__main__":
    main()
