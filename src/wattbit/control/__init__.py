"""wattbit.control"""
