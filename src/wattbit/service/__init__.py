"""wattbit.service"""
