"""The command line: ``main`` parses arguments; each command is one thin module here calling
the packages below. Imports anything; nothing imports it.
"""
