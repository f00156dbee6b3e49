"""Getting emoji: the async crawler, the self-hosted avatar API it can crawl, and the
folder importer. Everything here writes the core's emoji dataset format.
"""
